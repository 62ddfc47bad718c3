"""Training, evaluation and calibration: dataset readers, augmentation, configs, the training loop.
Imports the library packages below it; nothing outside training/ (but the CLI) imports from it.
"""
