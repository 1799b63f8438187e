"""Teacher artifacts on disk and the RecBole datasets that join them onto samples."""
