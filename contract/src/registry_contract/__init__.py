"""What producers, clients and every service code against: messages, envelope, views, ids.

No I/O: imports neither PyMongo nor FastStream nor FastAPI (tests/unit/test_architecture.py).
"""
