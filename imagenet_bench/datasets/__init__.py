"""Images and their labels: folder layouts, test sets, class subsets, decoding, preprocessing."""
