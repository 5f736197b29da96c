"""Entry layer: what the workflow's rule scripts call for steps that combine stages (one module a step).

preprocess_sample, gate_sample and process_sample (both, one job a sample), excluded_outputs (the outputs of a
left-out sample), runlog (each rule's log). Stage packages never import from here.
"""
