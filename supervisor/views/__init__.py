"""What people read: status details, watch, metrics, the morning report and its charts,
doctor checks, advice from past runs, and text formatting.
"""
