"""Media: uploads streamed into the blob store, who may see them, the workers' outcome, and the
rules for attaching them to messages."""
