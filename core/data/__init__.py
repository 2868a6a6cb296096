"""Every dataset source as one in-memory ``Dataset``, and the tf.data pipeline that feeds it to every model."""
