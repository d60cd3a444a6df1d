"""Training runs the notebooks make live: the recall race between an LSTM and attention (B),
pre-training TinyGPT (C), and training generations of TinyGPT on their own samples (C6)."""
from course_lib.train.collapse import self_training
from course_lib.train.pretrain import Pretrainer, TrainConfig, default_configs
from course_lib.train.recall import (
    RecallAttention,
    RecallComparison,
    RecallLSTM,
    compare_recall,
    recall_accuracy,
    train_recall,
)

__all__ = ["Pretrainer", "RecallAttention", "RecallComparison", "RecallLSTM", "TrainConfig", "compare_recall",
           "default_configs", "recall_accuracy", "self_training", "train_recall"]
