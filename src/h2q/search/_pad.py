"""The padding of search results (k larger than the database), as in faiss.

A module of its own so that the compiled kernels and the shared helpers both read it without
importing each other.
"""

import numpy as np

#: Distance reported for padding entries (k > number of database items), as in faiss.
PAD_DISTANCE = int(np.iinfo(np.int32).max)
#: Id reported for padding entries, as in faiss.
PAD_ID = -1
