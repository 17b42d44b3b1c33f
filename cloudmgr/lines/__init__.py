"""The departments' dedicated network lines (专线) and their consolidation onto the e-government
intranet and extranet (issue 19): the register, the target rule, import and the command line."""
