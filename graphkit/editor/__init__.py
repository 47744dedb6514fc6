"""The browser editor: editing operations, Streamlit app, and its launcher."""
