"""`bakery report`: the estate on one static page (lineage graph, versions, groups), read from bakery's services."""
