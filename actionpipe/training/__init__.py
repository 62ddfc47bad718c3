"""Training, evaluation and calibration: dataset readers, augmentation, configs, the training loop."""
