"""Review before release: the regions document, hand boxes followed through a video, kept faces.

Nothing here imports the service or the CLI; heavy libraries (OpenCV's trackers, dlib) are
imported where they are used.
"""
