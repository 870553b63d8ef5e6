"""Small models written the way public BNN code writes its binary layers (our own code, plain
torch, no hbn_engine.nn unless the idiom is about hbn_engine.nn itself). Each entry says what
the exporter must do with it: export and match PyTorch, with the expected kernel kind per
layer, or refuse with a message naming the node."""
