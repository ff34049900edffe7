"""Read and write ELAN annotation documents (``.eaf``, ``.etf`` templates, ``.ecv`` vocabularies).

:func:`read_eaf` reads every EAF version from 2.3 to 3.0 into the format-neutral
:class:`~musicperf.io.annotations.AnnotationSet` (times in float seconds relative to the start of
the media); :func:`write_eaf` writes an EAF 3.0 document that ELAN opens. ELAN's milliseconds
stay inside this module.

How the reader resolves what the file leaves implicit
-----------------------------------------------------
* **Unaligned time slots** (``TIME_SLOT`` without ``TIME_VALUE``): spaced evenly between the
  aligned slots around them along the chain of annotations of their tier (the end slot of one
  annotation is the begin slot of the next, as in a ``Time_Subdivision`` tier), so ``k``
  unaligned slots between 8000 and 11000 ms split that span into ``k + 1`` equal parts, as
  ELAN draws them. Slots no chain resolves are interpolated between their nearest aligned
  neighbours in the ``TIME_ORDER`` (slots before the first / after the last aligned slot take
  its value). One warning per file gives their number.
* **Reference annotations** (``REF_ANNOTATION``) take their parent annotation's span. When
  several annotations of one tier refer to the same parent (``Symbolic_Subdivision``, linked by
  ``PREVIOUS_ANNOTATION``), the parent's span is split evenly among them in chain order, the way
  ELAN displays them. Such derived times can fall between milliseconds.
* **TIME_ORIGIN** on a ``MEDIA_DESCRIPTOR`` is, as in ELAN, the media time in ms that document
  time 0 corresponds to: ``media_time = document_time + TIME_ORIGIN``. The reader adds the
  origin of the *first* media descriptor (ELAN's master media) to every time, so the returned
  times are seconds from the start of that media; each :class:`MediaRef` keeps its own origin in
  seconds. The writer subtracts it again.
* **Controlled vocabularies**: inline ``CV_ENTRY`` (EAF 2.x) and ``CV_ENTRY_ML``/``CVE_VALUE``
  (EAF 3.0, first value of each entry) are read; a vocabulary with an ``EXT_REF`` to an external
  ``.ecv`` file is loaded from that file, looked up as (1) the referenced path itself, (2) a file
  of the same name beside the ``.eaf``, (3) the single file beside the ``.eaf`` whose name ends
  with ``_<name>`` (collections that prefix their files with a source name). A missing ``.ecv``
  is a warning, not an error, and leaves that vocabulary out of ``AnnotationSet.vocabularies``.

Validation (what a hostile or broken file gets)
-----------------------------------------------
* A ``TIME_VALUE`` (or ``TIME_ORIGIN``) that is not a number, not finite (``NaN``, ``inf``),
  negative, or beyond 100 hours (:data:`~musicperf.io.annotations.MAX_TIME`), and an annotation
  time that the master ``TIME_ORIGIN`` makes negative or too large, are an
  :class:`AnnotationError` naming the file, the tier, the slot and the value as written.
* A document whose time slots have no ``TIME_VALUE`` at all has no knowable time: every
  annotation of it is dropped, with one :class:`~musicperf.io.annotations.AnnotationWarning`
  per tier naming it (before, all of them sat at 0 s and were trained on).
* Zero-length annotations: a tier whose annotations all have zero length spans no time and is
  dropped with a warning; zero-length annotations among intervals are kept as points (one
  frame each), with a warning (:func:`~musicperf.io.annotations.zero_length_rule`).
* An XML encoding that Python cannot read is an :class:`AnnotationError` (:mod:`._xml`).

Choices of the writer
---------------------
:func:`write_eaf` writes a set read by :func:`read_eaf` back **whole**: the document as read is
kept in ``AnnotationSet.document`` (an :class:`EafDocument`) and is the starting point of the
write; tiers whose annotations and attributes (and those of the tiers above them) are as read
are written verbatim, with their ids, time slots (unaligned ones stay unaligned), REF
annotations and ``CVE_REF``; everything the model does not hold (header properties such as the
URN, media and linked file descriptors, LOCALE, LANGUAGE, multilingual vocabularies with their
descriptions and ``CVE_ID``, EXTERNAL_REF, LEXICON_REF, linguistic types, constraints) is kept.
Only ``DATE`` changes in a plain round trip. Tiers that changed, and new ones, are written
time-alignable with explicit integer-millisecond times.

A set built in code (or ``keep_document=False``) is written as a new EAF 3.0 document: every
tier time-alignable with explicit times. A dependent tier keeps its ``PARENT_REF`` under an
``Included_In`` linguistic type when each of its annotations lies inside a parent annotation;
otherwise it is written as an independent tier, with a warning.

:func:`add_prediction_tiers` adds predicted tiers under a linguistic type of their own
(``musicperf-prediction``) whose controlled vocabulary lists the class names; each predicted
annotation refers to its class's entry (``CVE_REF``, EAF 2.8 and later).

The reader lives in :mod:`musicperf.io._elan_read`, the writer in :mod:`musicperf.io._elan_write`;
this module is their public face and holds the helpers that prepare a set for writing
(:func:`add_vocabulary`, :func:`add_prediction_tiers`). Imports only the standard library (and
:mod:`musicperf.io.annotations`).
"""


from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from musicperf.errors import AnnotationError
from musicperf.io._elan_read import EAF_FORMAT, EafDocument, read_eaf, read_ecv
from musicperf.io._elan_write import write_eaf
from musicperf.io.annotations import Annotation, AnnotationSet, Tier, check_time

__all__ = [
    "read_eaf",
    "write_eaf",
    "read_ecv",
    "add_vocabulary",
    "add_prediction_tiers",
    "EafDocument",
    "EAF_FORMAT",
    "PREDICTION_TYPE",
    "PREDICTION_VOCABULARY",
]


def add_vocabulary(aset: AnnotationSet, cv_id: str, values=None, *, tiers=None) -> list[str]:
    """Register a controlled vocabulary in ``aset`` and link tiers to it.

    Parameters
    ----------
    aset : AnnotationSet
        Modified in place.
    cv_id : str
        The vocabulary id.
    values : iterable of str, optional
        The allowed values; by default the distinct non-empty values of ``tiers``, sorted.
    tiers : iterable of str, optional
        Names of the tiers whose values come from this vocabulary; by default all tiers.

    Returns
    -------
    list of str
        The vocabulary's values.
    """
    names = list(tiers) if tiers is not None else list(aset.tiers)
    chosen = [aset[name] for name in names]
    if values is None:
        values = sorted({a.value for t in chosen for a in t.annotations if a.value})
    values = list(dict.fromkeys(values))
    aset.vocabularies[cv_id] = values
    for tier in chosen:
        tier.vocabulary = cv_id
    return values


#: The linguistic type and vocabulary id of the tiers :func:`add_prediction_tiers` adds.
PREDICTION_TYPE = "musicperf-prediction"
PREDICTION_VOCABULARY = "musicperf-classes"


def add_prediction_tiers(
    aset: AnnotationSet,
    predictions: Mapping[str, Iterable[tuple[float, float]]],
    *,
    classes: Sequence[str] | None = None,
    prefix: str = "",
    linguistic_type: str = PREDICTION_TYPE,
    vocabulary: str = PREDICTION_VOCABULARY,
    annotator: str = "musicperf",
) -> list[Tier]:
    """Add one predicted tier per class to ``aset``, under a linguistic type and vocabulary of their own.

    Each tier is named ``prefix + class``; its annotations are the predicted intervals, each
    valued with the class name. The tiers get the linguistic type ``linguistic_type`` (not the
    human tiers' type), whose controlled vocabulary ``vocabulary`` lists the class names, so
    :func:`write_eaf` writes every predicted annotation with a ``CVE_REF`` to its class's entry
    and ELAN offers the classes as the only values. When ``aset`` was read from an ELAN file,
    :func:`write_eaf` keeps that document whole and adds the tiers to it.

    Parameters
    ----------
    aset : AnnotationSet
        Modified in place (typically the human annotations read with :func:`read_eaf`).
    predictions : mapping of str to iterable of (start, end)
        Class name -> predicted intervals in seconds from the start of the media.
    classes : sequence of str, optional
        The vocabulary's values, in order: every class of the model, including those predicted
        nowhere; by default the keys of ``predictions``. Every key must be one of them.
    prefix : str
        Prepended to the class name to form the tier name (``"auto: "`` in the labelling
        workflow, so that predicted tiers never take a human tier's name).
    linguistic_type, vocabulary : str
        Ids of the tiers' linguistic type and controlled vocabulary.
    annotator : str
        The tiers' ``ANNOTATOR`` attribute.

    Returns
    -------
    list of Tier
        The tiers added, in the order of ``predictions``.

    Raises
    ------
    AnnotationError
        When a tier name is taken by a tier that is not an earlier prediction (a tier of
        another linguistic type: human work is never replaced), a key of ``predictions`` is
        not in ``classes``, or an interval is not finite, negative, beyond
        :data:`~musicperf.io.annotations.MAX_TIME` or does not end after it starts.
        Nothing is changed then.

    Notes
    -----
    An existing tier of the same name *and* of ``linguistic_type`` (an earlier prediction) is
    replaced. Values already in the vocabulary ``vocabulary`` are kept; the classes are added
    after them.

    Examples
    --------
    >>> aset = read_eaf("concert.eaf")                                     # doctest: +SKIP
    >>> add_prediction_tiers(aset, {"Nodding": [(1.0, 2.5)]}, classes=["Nodding", "Swaying"],
    ...                      prefix="auto: ")                              # doctest: +SKIP
    >>> write_eaf(aset, "concert.labelled.eaf")                            # doctest: +SKIP
    """
    classes = list(dict.fromkeys(classes if classes is not None else predictions))
    where = f"'{aset.source}'" if aset.source else "the annotation set"
    tiers: list[Tier] = []
    for cls, intervals in predictions.items():
        if cls not in classes:
            raise AnnotationError(f"predicted class {cls!r} is not one of the classes {classes}")
        name = prefix + cls
        existing = aset.tiers.get(name)
        if existing is not None and existing.linguistic_type != linguistic_type:
            raise AnnotationError(
                f"{where} already has a tier {name!r} of linguistic type {existing.linguistic_type!r}, not an "
                f"earlier prediction ({linguistic_type!r}); it is not replaced (choose another prefix)"
            )
        annotations = []
        for start, end in intervals:
            start, end = float(start), float(end)
            for t in (start, end):
                check_time(t, path=aset.source, where=f"predicted tier {name!r}")
            if not end > start:
                raise AnnotationError(f"predicted tier {name!r}: interval {start!r}-{end!r} s does not end after it starts")
            annotations.append(Annotation(start, end, cls))
        tiers.append(Tier(name, annotations, linguistic_type=linguistic_type, annotator=annotator, vocabulary=vocabulary))
    values = list(aset.vocabularies.get(vocabulary, []))
    aset.vocabularies[vocabulary] = values + [c for c in classes if c not in values]
    for tier in tiers:
        aset.tiers.pop(tier.name, None)
        aset.add_tier(tier)
    return tiers
