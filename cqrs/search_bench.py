"""`python -m cqrs.search_bench`: the search projector's write-path benchmark
(`projections.search.bench`) against the settings' Elasticsearch (`CQRS_ES_URL`,
`CQRS_ES_API_KEY`, read once by the bootstrap); `--es-url`/`--es-api-key` override them."""

from __future__ import annotations

from cqrs.bootstrap import Bootstrap
from projections.search import bench


def main(argv: list[str] | None = None) -> None:
    bench.main(Bootstrap().config.search, argv)


if __name__ == "__main__":
    main()
