"""The effects and the story of a run, in subpackages by idea; arrows point one way:

``cli`` -> ``run`` and ``views`` -> ``worker``, ``git``, ``records`` (and ``hook``) -> ``safety``,
``contracts``, ``platform_adapters``. Nothing here is imported by ``safety`` or ``contracts``.
"""
