"""What a reader sees: the report of one notebook (`report`), a picture of a wrong gradient
(`picture`) and student text made safe for a terminal (`terminal`)."""
