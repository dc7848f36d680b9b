"""LIA's training (LIA Sec. 4): config.py (LiaTrainConfig: a TrainConfig plus LIA's fields), steps.py (the GAN step
of stage 1, the encoder step of stage 2) and run.py (LiaRun, the model kind the training loop runs, and
`train_lia`, its two stages)."""
