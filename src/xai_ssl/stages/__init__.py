"""The workflow's stages: one module per rule file (``rules/<stage>.smk``), one function per rule, named as the rule.

Each Snakemake script is three lines: it imports the function named like its rule and hands it to
:func:`xai_ssl.stages.job.run_rule`, which passes the rule's named inputs, outputs, params and wildcards
as keyword arguments. A stage function reads its inputs through ``xai_ssl.io``, calls one computation
package, and writes through ``xai_ssl.io``. Only ``stages.report`` imports plotting.
"""
