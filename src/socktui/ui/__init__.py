"""The Textual app. Everything under here may import Textual; nothing outside it may."""
