print("lethe-bench")
