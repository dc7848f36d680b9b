"""Pretrained feature networks and the image distances built on them, shared by the metrics, the image operations
and LIA's training: the offline lookup of their weight files (weights.py), Inception pool3 and LPIPS (nets.py),
VGG16 conv4_3 (vgg.py), the face crop the papers measure in (crop.py) and SSIM (ssim.py). Nothing here imports
`metrics`, `ops` or `training`."""
