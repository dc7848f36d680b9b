"""`python -m automod_cli …` (used with torchrun: `torchrun --nproc_per_node=K -m automod_cli train …`)."""

import sys

from automod_cli.entry import main

sys.exit(main())
