"""A training or evaluation job: flags, start-up checks and steps, the output lock,
stop signals, snapshots' run length, the training log and how the job ends."""
