"""Re-create every function, view, policy and grant from sql/functions and sql/policies.

Runs after every migrate (python -m api.migrate runs it even when no table change
is pending), so those folders are the single source of truth.
"""

from api.migrate import code_steps

steps = code_steps()
