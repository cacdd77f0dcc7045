"""What a prediction run writes and the table reads: prediction files, manifests, output folders."""
