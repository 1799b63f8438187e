"""What recbole-distill's harness asks of the models it adds to RecBole, declared in one place."""

from recbole.model.abstract_recommender import AbstractRecommender


class PluginRecommender:
    r"""Base of every recbole-distill model: the hooks the harness calls, with their defaults.

    A plugin model puts this class (or one derived from it, such as
    :class:`~recbole_distill.model.dllm2rec.DLLM2Rec`) before the RecBole model it extends, e.g.
    ``class PreBERT(PluginRecommender, SequentialRecommender)``. The harness asks nothing else of it:

    * :meth:`check_config`: :class:`~recbole_distill.config.Config` calls it once the config is final,
      before any data is loaded; a bad value raises :class:`~recbole_distill.errors.ConfigError`.
    * :meth:`teacher_parts`: the artifacts :class:`~recbole_distill.data.dataset.TeacherSequentialDataset`
      joins onto RecBole's data for this config.
    * :attr:`loss_names`: :class:`~recbole_distill.trainer.DistillTrainer` logs the parts that
      ``calculate_loss`` returns (a tuple) under these names.
    * :attr:`prefix_scores`: the teacher export ranks the training samples of a window at once.
    * :attr:`is_student` and :meth:`twin`: the benchmark reports a student against its twin.
    * :attr:`saved_teacher_tables`: what the model reads from teacher folders at inference, saved with
      every checkpoint, so that a saved model never reads a teacher folder again.

    Plugin models train with :class:`~recbole_distill.trainer.DistillTrainer` and read their defaults
    from ``properties/model/<Model>.yaml`` over those of the RecBole models they extend.
    """

    #: True for a distilled student: the benchmark compares it with the RecBole model it extends (its twin)
    is_student = False

    #: names of the parts of ``calculate_loss``'s tuple, e.g. ``("rec_loss", "rd_loss")``; None: one loss
    loss_names = None

    #: a causal model's method ``prefix_scores(item_seq) -> [B, L, n_items]``, the next-item scores after
    #: every prefix of ``item_seq``: the teacher export then ranks a window of samples in one pass; None:
    #: samples are ranked one ``full_sort_predict`` each
    prefix_scores = None

    #: dataset attributes built from teacher folders that the model reads at inference (e.g.
    #: ``teacher_item_embedding``); they are saved in every checkpoint (RecBole's ``other_parameter``) and
    #: :func:`~recbole_distill.quick_start.load_data_and_model` builds the data from them instead of the folders
    saved_teacher_tables = ()

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self._teacher_tables = {name: getattr(dataset, name, None) for name in self.saved_teacher_tables}

    def other_parameter(self):
        return {**super().other_parameter(), **self._teacher_tables}

    def load_other_parameter(self, para):
        # the tables were read when the model was built (from this checkpoint when it was loaded)
        super().load_other_parameter({k: v for k, v in (para or {}).items() if k not in self._teacher_tables})

    @classmethod
    def check_config(cls, config):
        """Fail before any data is loaded if a key of this model is missing or out of range."""

    @classmethod
    def twin(cls):
        """The model a student is measured against: the model it extends, with everything it adds left out
        (``DLLM2RecSASRec`` -> ``SASRec``, ``DLLM2RecDROS`` -> ``DROS``, ``MiniBERT`` -> ``BERT4Rec``); None for
        a model that is no student."""
        if not cls.is_student:
            return None
        return next(
            c for c in cls.__mro__[1:]
            if issubclass(c, AbstractRecommender) and not (issubclass(c, PluginRecommender) and c.is_student)
        )

    @classmethod
    def teacher_parts(cls, config):
        r"""What to join onto RecBole's data for ``config``, a subset of

        * ``"ranking"``: the teacher's top-K of every training sample (``teacher_topk``, ...);
        * ``"eval_ranking"``: the same for every valid and test sample too;
        * ``"embedding"``: the teacher's item embeddings (``dataset.teacher_item_embedding``);
        * ``"item_text"``: item-text embeddings from ``item_text_embedding_path``
          (``dataset.item_text_embedding``).
        """
        return set()


def is_plugin_model(model_class):
    """Whether ``model_class`` is one of recbole-distill's models (rather than one of RecBole's)."""
    return isinstance(model_class, type) and issubclass(model_class, PluginRecommender)
