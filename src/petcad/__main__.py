from petcad.cli import main

raise SystemExit(main())
