print("stream-bench: placeholder")
