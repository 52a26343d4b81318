"""servicekit"""
