"""Text-generation tasks for causal LMs (chat-template prompts) and seq2seq models (T5/BART)."""
