"""Small training runs the notebooks make live: the recall race between an LSTM and attention."""
from course_lib.train.recall import (
    RecallAttention,
    RecallComparison,
    RecallLSTM,
    compare_recall,
    recall_accuracy,
    train_recall,
)

__all__ = ["RecallAttention", "RecallComparison", "RecallLSTM", "compare_recall", "recall_accuracy",
           "train_recall"]
