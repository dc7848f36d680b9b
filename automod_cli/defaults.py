"""Numbers that the command line shows in `--help` (batch sizes, sample counts, optimisation settings), kept in a
module that imports nothing, so that `automod CMD --help` answers without importing torch. The modules that use
them import them from here; each is named beside its value."""

RECONSTRUCT_BATCH = (
    16  # ops/reconstruct.py: images per forward pass; bounds memory when many exemplars are encoded
)
ENCODE_BATCH = 32  # ops/codes.py: images per encoder pass in `encode_files`
CODES_SUFFIX = ".npz"  # ops/codes.py: a codes file
PROJECTION_STEPS = 200  # ops/projection.py: Supp. App. G runs the projector for up to 200 iterations
PROJECTION_LR = 0.005  # ops/projection.py: Adam's learning rate for the latent
PROJECTION_IMAGES = 1000  # metrics/inversion.py: Supp. App. G's 1000 test images
# the metrics' protocols (metrics/registry.py's records, `automod eval NAME --help`)
FID_SAMPLES = 50_000  # metrics/fid.py: NeurIPS Sec. 4, "50k batch of generated samples"
FID_BATCH = 50  # metrics/fid.py: pytorch-fid's default batch
PPL_SAMPLES = 100_000  # metrics/ppl.py: Supp. App. A
FD_BUILTIN_SAMPLES = (
    1024  # metrics/builtin/fd_builtin.py: as many as the reference images (the built-in test split)
)
FD_BUILTIN_BATCH = 64  # metrics/builtin/fd_builtin.py
BUILTIN_TEST_COUNT = (
    1024  # the built-in test split's size, data_prep/builtin.py's SPLITS["test"] (a test checks)
)
MIX_TRUTH_PAIRS = BUILTIN_TEST_COUNT // 2  # metrics/builtin/ground_truth.py: disjoint pairs of the test split
MIX_TRUTH_SCALES = (
    "coarse"  # metrics/builtin/ground_truth.py: B's blocks in the mix, the layout the truth takes
)
