"""Expressivity analysis: exact WL oracles, hard graph pairs, loaders and the
BREC pair-separation protocol.

* :func:`wl_hash`, :func:`wl_equivalent`, :func:`wl_colors` -- color
  refinement (``k=1``) and folklore 2-WL (``k=2``);
* generators: :func:`csl_graph`, :func:`cfi_pair`, :func:`rook_graph`,
  :func:`shrikhande_graph`, :func:`classic_pairs`, :func:`random_regular_pair`;
* loaders: :func:`load_brec`, :func:`load_graph6`, :func:`load_exp`,
  :func:`load_cexp`, :func:`load_csl`;
* pair separation: :func:`separates` (BREC protocol with any PyG model,
  e.g. from :func:`model_factory`), :func:`oracle_separation` (exact WL
  verdicts per category), :func:`separating_polynomials`;
* resumable BREC tables: :func:`run_brec` / :func:`run_oracle` (one JSON
  line per finished pair) and :class:`BRECTable` (categories, reliability,
  oracle-bound violations, time, heatmap);
* symbolic side: :func:`certify` / :func:`verify` (certificates),
  :class:`ContractionBank` / :func:`get_bank` (banks), :func:`analyze`
  (the table);
* :class:`GraphPair`, :func:`to_data`.
"""
from ._graphs import GraphPair, StoredRelabelings, as_simple_graph, to_data, to_networkx
from .brec import (
    BREC_REFERENCE,
    BREC_THRESHOLD,
    BRECConfig,
    CategoryCount,
    PairVerdict,
    SeparationReport,
    hotelling_t2,
    oracle_separation,
    separates,
)
from .generators import (
    CSL_SKIPS,
    cfi_pair,
    classic_pairs,
    csl_graph,
    random_regular_pair,
    rook_graph,
    shrikhande_graph,
)
from .loaders import (
    BREC_CATEGORIES,
    BRECRelabelings,
    csl_pairs,
    load_brec,
    load_brec_relabelings,
    load_cexp,
    load_csl,
    load_exp,
    load_graph6,
    make_pairs,
)
from .wl import wl_colors, wl_equivalent, wl_hash

__all__ = [
    "GraphPair",
    "StoredRelabelings",
    "as_simple_graph",
    "to_data",
    "to_networkx",
    "wl_hash",
    "wl_equivalent",
    "wl_colors",
    "CSL_SKIPS",
    "csl_graph",
    "cfi_pair",
    "rook_graph",
    "shrikhande_graph",
    "classic_pairs",
    "random_regular_pair",
    "BREC_CATEGORIES",
    "load_brec",
    "load_brec_relabelings",
    "BRECRelabelings",
    "load_graph6",
    "make_pairs",
    "load_exp",
    "load_cexp",
    "load_csl",
    "csl_pairs",
    "separates",
    "oracle_separation",
    "hotelling_t2",
    "BRECConfig",
    "BREC_THRESHOLD",
    "BREC_REFERENCE",
    "PairVerdict",
    "CategoryCount",
    "SeparationReport",
]

# Symbolic side: certificates, contraction banks, the search and the table.
from .analysis import ExpressivityRow, ExpressivityTable, analyse, analyze, polynomial_family
from .banks import (
    ContractionBank,
    EliminationRule,
    available_banks,
    elimination_rule,
    get_bank,
    register_bank,
)
from .certificates import Certificate, CertificateError, State, Step, verify
from .brec_run import ORACLES, norm_statistics_marker, read_records, run_brec, run_oracle, stable_pair_id
from .brec_table import BRECTable, CategoryCell
from .models import (MODEL_BOUNDS, MODEL_DEFAULTS, MODELS, model_factory, register_model,
                     with_cumulative_norm_statistics)
from .polynomial_colors import with_polynomial_colors
from .search import certify, is_computable
from .separation import separating_polynomials

__all__ += [
    "State",
    "Step",
    "Certificate",
    "CertificateError",
    "ContractionBank",
    "EliminationRule",
    "ExpressivityRow",
    "ExpressivityTable",
    "analyze",
    "available_banks",
    "certify",
    "is_computable",
    "elimination_rule",
    "get_bank",
    "polynomial_family",
    "register_bank",
    "separating_polynomials",
    "verify",
    "MODELS",
    "MODEL_BOUNDS",
    "MODEL_DEFAULTS",
    "model_factory",
    "register_model",
    "with_cumulative_norm_statistics",
    "ORACLES",
    "run_brec",
    "run_oracle",
    "norm_statistics_marker",
    "read_records",
    "stable_pair_id",
    "BRECTable",
    "CategoryCell",
    "with_polynomial_colors",
]
