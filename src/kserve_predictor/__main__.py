import sys

from kserve_predictor.interfaces.cli import main

sys.exit(main())
