"""Analysis: drift, separation and quality numbers for each epoch, in the original feature space."""
