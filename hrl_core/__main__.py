from hrl_core.cli import main

raise SystemExit(main())
