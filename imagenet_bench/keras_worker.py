"""``python -m imagenet_bench.keras_worker JOB``: the Keras model process's command line, kept
as it was before the package had subpackages (process listings and older job files name it);
the code is ``predict.keras_worker``."""

import sys

from imagenet_bench.predict.keras_worker import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
