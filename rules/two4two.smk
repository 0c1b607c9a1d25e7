# Two4Two datasets published as tar archives (source: two4two_archive): download (or place by hand), verify
# (pinned sha256, else trust on first use), extract the split folders; rules/data.smk indexes them with the
# same reader as a Two4Two folder.

# Runs on the submitting host (compute nodes often have no network); a file placed by hand at the archive
# path is used as it is. A failed download names the URL and that path.
rule download_dataset_archive:
    output:
        archive=ensure("{archive}", non_empty=True, sha256=archive_ensured_sha256),
    params:
        url=lambda wildcards: config["datasets"][ARCHIVE_DOWNLOADS[wildcards.archive]]["url"],
        sha256=lambda wildcards: archive_sha256(ARCHIVE_DOWNLOADS[wildcards.archive]),
    wildcard_constraints:
        archive=_one_of(ARCHIVE_DOWNLOADS),
    log:
        "logs/download_dataset_archive/{archive}.log",
    localrule: True
    retries: 3
    cache: "omit-software"
    conda:
        "../envs/xai-ssl.yaml"
    script:
        "../workflow/scripts/download_dataset_archive.py"


rule extract_two4two_archive:
    input:
        archive=lambda wildcards: config["datasets"][wildcards.dataset]["archive"],
    output:
        files=directory("results/data/{dataset}/extracted"),
    params:
        splits=lookup(dpath="datasets/{dataset}/extract_splits", within=config),
        sha256=lambda wildcards: archive_sha256(wildcards.dataset),
        url=lambda wildcards: config["datasets"][wildcards.dataset].get("url"),
        code=code_fingerprint("data", "steps"),
    wildcard_constraints:
        dataset=_dataset_names(ARCHIVE_DATASETS),
    log:
        "logs/extract_two4two_archive/{dataset}.log",
    benchmark:
        "benchmarks/extract_two4two_archive/{dataset}.tsv"
    conda:
        "../envs/xai-ssl.yaml"
    script:
        "../workflow/scripts/extract_two4two_archive.py"
