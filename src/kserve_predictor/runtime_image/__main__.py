import sys

from kserve_predictor.runtime_image.cli import main

sys.exit(main())
