import sys

from testing.kfp_harness.harness import main

sys.exit(main())
