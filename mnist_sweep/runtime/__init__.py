"""What keeps a long sweep alive: worker processes, the study's lock, the memory budget,
stop signals and the progress display. None of it knows which engine searches."""
