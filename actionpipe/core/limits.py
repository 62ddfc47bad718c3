"""Upper bounds on every size a user can ask for: the command line refuses more before any work
(exit 2), and the library checks the same numbers where cards, configs and callers set them.

Without a bound, ``--imgsz 100000`` or ``pack --frames 100000000`` allocate until the machine
kills the process. The bounds are far above any real use. No imports: the CLI reads them at start.
"""
MAX_IMGSZ = 2048              # pose model input side, pixels (the models are trained at 640)
MAX_POSE_BATCH = 64           # frames per pose model call
MAX_BATCH = 1024              # ST-GCN windows per forward pass
MAX_FRAMES = 100_000          # frames of one packed sample or window (1.8 h at 15 fps)
MAX_PEOPLE = 64               # people kept per frame or sample
MAX_SIDE = 16_384             # a frame side in pixels (extract --max-side, convert --width/--height)
MAX_FPS = 1000.0              # frames per second (probe treats a higher container rate as unknown)
MAX_WINDOW_S = 3600.0         # a classify window or stride, seconds
MAX_THREADS = 1024            # CPU threads for torch
MAX_WORKERS = 256             # Ray pose actors
MAX_VIEWS = 100               # augmented copies of each validation clip (calibrate)
MAX_COUNT = 100_000           # plain counts: epochs, classes shown
