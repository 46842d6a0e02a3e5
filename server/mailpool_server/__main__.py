from mailpool_server.cli import main

raise SystemExit(main())
