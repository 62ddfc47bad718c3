"""What a run says and writes: results, timelines, top-k reports, JSONL/Parquet/HTML, rendered video.
Imports actionpipe.model and the stages below it; never actionpipe.pipeline.
"""
