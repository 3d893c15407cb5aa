print("parquet-bench: placeholder")
