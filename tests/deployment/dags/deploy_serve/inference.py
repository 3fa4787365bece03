# A model server handler that loads slowly: the endpoint stays Creating for ~25 s, so the
# deploy task defers and can be cleared while it waits.
import time


def model_fn(model_dir):
    time.sleep(25)
    return "ok"


def predict_fn(data, model):
    return {"action": 0, "model": model}
