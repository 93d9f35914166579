from hubwatch.cli import main

raise SystemExit(main())
