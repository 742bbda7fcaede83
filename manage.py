#!/usr/bin/env python
from omnihub.cli import main

if __name__ == "__main__":
    main()
