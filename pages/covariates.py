import streamlit as st

st.title("covariates")
st.info("This page is being built.")
