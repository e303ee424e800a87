"""The ``mesh`` command: parses ./mesh's sub-commands and hands each to the
package that does the work (local_stack, sample_data, analytics_svc.auth.admin, codegen)."""
